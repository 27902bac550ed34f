-- Mid-section-defect seeds: the distinct lots tracked in at the detection work centers (:wcs —
-- the work centers of the station groups named, or the work centers named) in
-- [:start_time, :end_time). The work-center IN-list lets IX_WIP_WORKCENTER_TRACKIN serve the
-- range scan. Only rows with a machine are track-ins (as for the MSD population). DISTINCT
-- dedupes here: months of history are hundreds of thousands of rows for tens of thousands of
-- lots, and only the lots may reach Python. LEFT JOIN keeps a lot whose container row is
-- missing (an attribution must not drop lots).
SELECT T.CONTAINERID AS CONTAINERID,
       C.CONTAINERNAME AS CONTAINERNAME
FROM (
    SELECT DISTINCT H.CONTAINERID AS CONTAINERID
    FROM DWH.DW_MES_LOTWIPHISTORY H
    WHERE H.WORKCENTERNAME IN (:wcs)
      AND H.TRACKINTIMESTAMP >= :start_time
      AND H.TRACKINTIMESTAMP < :end_time
      AND H.EQUIPMENTID IS NOT NULL
) T
LEFT JOIN DWH.DW_MES_CONTAINER C ON C.CONTAINERID = T.CONTAINERID
ORDER BY T.CONTAINERID
