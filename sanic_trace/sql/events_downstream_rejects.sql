-- Events "downstream_rejects" (forward MSD): the reject records of the given containers —
-- which, in the forward variant, are the detection lots and their descendants — each with
-- its station group and route order (DW_MES_SPEC_WORKCENTER_V by SPECNAME), so that the
-- aggregation can keep the rejects at or after the detection station. The events stage
-- has only ids, not the station, so no station filter is applied here.
SELECT R.CONTAINERID AS CONTAINERID,
       R.WORKCENTERNAME AS WORKCENTERNAME,
       S.WORKCENTER_GROUP AS WORKCENTER_GROUP,
       S.WORKCENTERSEQUENCE_GROUP AS WORKCENTERSEQUENCE_GROUP,
       R.SPECNAME AS SPECNAME,
       R.EQUIPMENTNAME AS EQUIPMENTNAME,
       R.LOSSREASONNAME AS LOSSREASONNAME,
       COALESCE(R.REJECTQTY, 0) + COALESCE(R.STANDBYQTY, 0) + COALESCE(R.QTYTOPROCESS, 0)
           + COALESCE(R.INPROCESSQTY, 0) + COALESCE(R.PROCESSEDQTY, 0) AS REJECT_TOTAL_QTY,
       R.DEFECTQTY AS DEFECTQTY,
       R.TXNDATE AS TXNDATE,
       R.REJECTHISTORYID AS REJECTHISTORYID
FROM DWH.DW_MES_LOTREJECTHISTORY R
LEFT JOIN DWH.DW_MES_SPEC_WORKCENTER_V S ON S.SPECNAME = R.SPECNAME
WHERE R.CONTAINERID IN (:ids)
ORDER BY R.CONTAINERID, CASE WHEN R.TXNDATE IS NULL THEN 1 ELSE 0 END, R.TXNDATE, R.REJECTHISTORYID
