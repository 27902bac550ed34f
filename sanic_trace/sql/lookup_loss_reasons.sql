-- The loss reasons of the recent past (reject rows with TXNDATE >= :since): what the MSD page
-- offers in its loss-reason filter.
SELECT DISTINCT R.LOSSREASONNAME AS LOSSREASONNAME
FROM DWH.DW_MES_LOTREJECTHISTORY R
WHERE R.TXNDATE >= :since
  AND R.LOSSREASONNAME IS NOT NULL
ORDER BY R.LOSSREASONNAME
