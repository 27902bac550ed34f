-- Forward lineage: children of each container of a frontier — the finished lots it was
-- merged into (with their serial number) and the lots split from it.
SELECT CA.CONTAINERID AS PARENTID,
       CA.LOTID AS CHILDID,
       CA.FINISHEDNAME AS FINISHEDNAME
FROM DWH.DW_MES_PJ_COMBINEDASSYLOTS CA
WHERE CA.CONTAINERID IN (:ids)
UNION ALL
SELECT C.SPLITFROMID AS PARENTID,
       C.CONTAINERID AS CHILDID,
       NULL AS FINISHEDNAME
FROM DWH.DW_MES_CONTAINER C
WHERE C.SPLITFROMID IN (:ids)
