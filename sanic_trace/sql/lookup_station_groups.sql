-- The station groups in route order, each with its work centers and specs: what a detection
-- station (params.station) may name, what the MSD page offers in its station picker, and how
-- the MSD analysis places a row (by its SPECNAME) before or after the detection station.
SELECT S.WORKCENTER_GROUP AS WORKCENTER_GROUP,
       S.WORKCENTERSEQUENCE_GROUP AS WORKCENTERSEQUENCE_GROUP,
       S.WORKCENTERNAME AS WORKCENTERNAME,
       S.SPECNAME AS SPECNAME
FROM DWH.DW_MES_SPEC_WORKCENTER_V S
WHERE S.WORKCENTER_GROUP IS NOT NULL
ORDER BY S.WORKCENTERSEQUENCE_GROUP, S.WORKCENTER_GROUP, S.WORKCENTERNAME, S.SPECNAME
