-- Seeds by a work order pattern (the dashboard's wildcard, `*` or `%`): containers whose MFGORDERNAME
-- matches :pattern. The pattern is bound, never spliced into the text; '\' escapes the
-- characters that must match as themselves (a typed `_` or `\`).
SELECT C.CONTAINERID AS CONTAINERID,
       C.CONTAINERNAME AS CONTAINERNAME
FROM DWH.DW_MES_CONTAINER C
WHERE C.MFGORDERNAME LIKE :pattern ESCAPE '\'
ORDER BY C.MFGORDERNAME, C.CONTAINERNAME, C.CONTAINERID
