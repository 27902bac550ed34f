-- Mid-section-defect seeds: the distinct lots tracked in at a station in [:start_time, :end_time).
-- :station is a station group (WORKCENTER_GROUP) or a single WORKCENTERNAME. The group is
-- matched through its work centers so that IX_WIP_WORKCENTER_TRACKIN serves the range scan.
-- DISTINCT dedupes here: months of history are hundreds of thousands of rows for tens of
-- thousands of lots, and only the lots may reach Python. LEFT JOIN keeps a lot whose
-- container row is missing (an attribution must not drop lots).
SELECT T.CONTAINERID AS CONTAINERID,
       C.CONTAINERNAME AS CONTAINERNAME
FROM (
    SELECT DISTINCT H.CONTAINERID AS CONTAINERID
    FROM DWH.DW_MES_LOTWIPHISTORY H
    WHERE H.TRACKINTIMESTAMP >= :start_time
      AND H.TRACKINTIMESTAMP < :end_time
      AND (H.WORKCENTERNAME = :station
           OR H.WORKCENTERNAME IN (SELECT S.WORKCENTERNAME
                                   FROM DWH.DW_MES_SPEC_WORKCENTER_V S
                                   WHERE S.WORKCENTER_GROUP = :station))
) T
LEFT JOIN DWH.DW_MES_CONTAINER C ON C.CONTAINERID = T.CONTAINERID
ORDER BY T.CONTAINERID
