-- Reverse seeds by serial number: FINISHEDNAME of a merge names the finished lot (LOTID).
-- A finished lot has one merge row per source lot, hence DISTINCT. LEFT JOIN: a finished
-- lot missing from DW_MES_CONTAINER still resolves (its name is then NULL).
SELECT DISTINCT CA.FINISHEDNAME AS MATCH_VALUE,
       CA.LOTID AS CONTAINERID,
       C.CONTAINERNAME AS CONTAINERNAME
FROM DWH.DW_MES_PJ_COMBINEDASSYLOTS CA
LEFT JOIN DWH.DW_MES_CONTAINER C ON C.CONTAINERID = CA.LOTID
WHERE CA.FINISHEDNAME IN (:ids)
ORDER BY CA.FINISHEDNAME, CA.LOTID
