-- Reverse seeds by serial number: FINISHEDNAME of a merge names the finished lot; the seeds are
-- its source lots (the lots people trace back from), one per merge row. LEFT JOIN: a source lot
-- missing from DW_MES_CONTAINER still resolves (its name is then NULL). A serial that names no
-- merge falls back to a container name, then to a wafer lot (trace/seeds.py).
SELECT CA.FINISHEDNAME AS MATCH_VALUE,
       CA.CONTAINERID AS CONTAINERID,
       C.CONTAINERNAME AS CONTAINERNAME
FROM DWH.DW_MES_PJ_COMBINEDASSYLOTS CA
LEFT JOIN DWH.DW_MES_CONTAINER C ON C.CONTAINERID = CA.CONTAINERID
WHERE CA.FINISHEDNAME IN (:ids)
ORDER BY CA.FINISHEDNAME, C.CONTAINERNAME, CA.CONTAINERID
