-- Events "jobs": maintenance jobs whose CONTAINERIDS (a comma-separated list) holds one of the
-- ids; one row per (job, matched id) with CONTAINERID set to that id. Commas are added on both
-- sides so that an id only matches a whole list entry. The container table turns the bound
-- ids into rows (Oracle has no portable VALUES list).
SELECT C.CONTAINERID AS CONTAINERID,
       J.JOBID AS JOBID,
       J.RESOURCENAME AS RESOURCENAME,
       J.JOBMODELNAME AS JOBMODELNAME,
       J.JOBSTATUS AS JOBSTATUS,
       J.CREATEDATE AS CREATEDATE,
       J.COMPLETEDATE AS COMPLETEDATE,
       J.SYMPTOMCODENAME AS SYMPTOMCODENAME,
       J.CAUSECODENAME AS CAUSECODENAME,
       J.REPAIRCODENAME AS REPAIRCODENAME
FROM DWH.DW_MES_CONTAINER C
JOIN DWH.DW_MES_JOB J ON INSTR(',' || J.CONTAINERIDS || ',', ',' || C.CONTAINERID || ',') > 0
WHERE C.CONTAINERID IN (:ids)
ORDER BY C.CONTAINERID, CASE WHEN J.CREATEDATE IS NULL THEN 1 ELSE 0 END, J.CREATEDATE, J.JOBID
