-- Backward lineage: the source lots merged into each finished lot of a frontier.
SELECT CA.LOTID AS LOTID,
       CA.CONTAINERID AS CONTAINERID
FROM DWH.DW_MES_PJ_COMBINEDASSYLOTS CA
WHERE CA.LOTID IN (:ids)
