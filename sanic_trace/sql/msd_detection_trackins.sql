-- MSD detection population: the track-ins of a batch of seed lots at the detection work centers
-- (:wcs), within [:start_time, :end_time) when :windowed = 1. Only rows with a machine and a
-- track-in time are track-ins. A lot has a few such rows (partial track-outs repeat a track-in):
-- the caller takes the latest as the lot's detection event. `|| ''` keeps the work-center index
-- out of this query (it would scan every test track-in of the warehouse for each IN-batch): the
-- lots' own rows, through IX_WIP_CONTAINER, are few.
SELECT H.CONTAINERID AS CONTAINERID,
       H.EQUIPMENTID AS EQUIPMENTID,
       H.EQUIPMENTNAME AS EQUIPMENTNAME,
       H.TRACKINTIMESTAMP AS TRACKINTIMESTAMP,
       H.TRACKINQTY AS TRACKINQTY,
       H.HISTORYID AS HISTORYID
FROM DWH.DW_MES_LOTWIPHISTORY H
WHERE H.CONTAINERID IN (:ids)
  AND (H.WORKCENTERNAME || '') IN (:wcs)
  AND H.EQUIPMENTID IS NOT NULL
  AND H.TRACKINTIMESTAMP IS NOT NULL
  AND (:windowed = 0 OR (H.TRACKINTIMESTAMP >= :start_time AND H.TRACKINTIMESTAMP < :end_time))
ORDER BY H.CONTAINERID, H.TRACKINTIMESTAMP, H.HISTORYID
