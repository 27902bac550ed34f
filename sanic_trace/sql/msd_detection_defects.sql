-- MSD detection defects: per lot of a batch and loss reason, the rejected and defective units at
-- the detection work centers (:wcs) — placed, like every row of the analysis, by its SPECNAME —
-- within [:start_time, :end_time) when :windowed = 1. The six quantity columns together, NULL
-- counted as 0 (DEFECTQTY included: the fixed definition).
SELECT R.CONTAINERID AS CONTAINERID,
       R.LOSSREASONNAME AS LOSSREASONNAME,
       SUM(COALESCE(R.REJECTQTY, 0) + COALESCE(R.STANDBYQTY, 0) + COALESCE(R.QTYTOPROCESS, 0)
           + COALESCE(R.INPROCESSQTY, 0) + COALESCE(R.PROCESSEDQTY, 0) + COALESCE(R.DEFECTQTY, 0)) AS QTY
FROM DWH.DW_MES_LOTREJECTHISTORY R
JOIN DWH.DW_MES_SPEC_WORKCENTER_V S ON S.SPECNAME = R.SPECNAME
WHERE R.CONTAINERID IN (:ids)
  AND S.WORKCENTERNAME IN (:wcs)
  AND (:windowed = 0 OR (R.TXNDATE >= :start_time AND R.TXNDATE < :end_time))
GROUP BY R.CONTAINERID, R.LOSSREASONNAME
ORDER BY R.CONTAINERID, R.LOSSREASONNAME
