-- Lineage: what the lineage needs of each container of a frontier — its name, its wafer
-- lot and its split parent.
SELECT C.CONTAINERID AS CONTAINERID,
       C.CONTAINERNAME AS CONTAINERNAME,
       C.FIRSTNAME AS FIRSTNAME,
       C.SPLITFROMID AS SPLITFROMID
FROM DWH.DW_MES_CONTAINER C
WHERE C.CONTAINERID IN (:ids)
