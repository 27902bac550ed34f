-- Events "jobs": maintenance jobs whose CONTAINERIDS (a comma-separated list) holds one of the
-- ids; one row per (job, matched id) with CONTAINERID set to that id.
-- The lists are split into their elements (a recursive CTE, which Oracle and SQLite both run
-- without the RECURSIVE keyword) and the elements matched to the ids by equality: an id matches
-- a whole list entry only, never a substring, and the cost is one pass over the job lists per
-- IN-batch instead of one INSTR per (id, job) pair. `INSTR(REST, ',') > 0` ends the recursion
-- on both databases (Oracle's SUBSTR past the end is NULL, SQLite's is '').
-- The container table keeps the rows to ids that are containers, as an IN-list join always did.
WITH ELEMENTS (JOBID, CID, REST) AS (
    SELECT J.JOBID,
           SUBSTR(J.CONTAINERIDS || ',', 1, INSTR(J.CONTAINERIDS || ',', ',') - 1),
           SUBSTR(J.CONTAINERIDS || ',', INSTR(J.CONTAINERIDS || ',', ',') + 1)
    FROM DWH.DW_MES_JOB J
    UNION ALL
    SELECT E.JOBID,
           SUBSTR(E.REST, 1, INSTR(E.REST, ',') - 1),
           SUBSTR(E.REST, INSTR(E.REST, ',') + 1)
    FROM ELEMENTS E
    WHERE INSTR(E.REST, ',') > 0
),
MATCHED AS (
    SELECT DISTINCT E.JOBID AS JOBID, E.CID AS CID
    FROM ELEMENTS E
    WHERE E.CID IN (:ids)
)
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
FROM MATCHED M
JOIN DWH.DW_MES_CONTAINER C ON C.CONTAINERID = M.CID
JOIN DWH.DW_MES_JOB J ON J.JOBID = M.JOBID
ORDER BY C.CONTAINERID, CASE WHEN J.CREATEDATE IS NULL THEN 1 ELSE 0 END, J.CREATEDATE, J.JOBID
