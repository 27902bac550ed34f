-- Seeds by a lot id pattern (the dashboard's wildcard, `*` or `%`): containers whose CONTAINERNAME
-- matches :pattern. The pattern is bound, never spliced into the text; '\' escapes the
-- characters that must match as themselves (a typed `_` or `\`).
SELECT C.CONTAINERID AS CONTAINERID,
       C.CONTAINERNAME AS CONTAINERNAME
FROM DWH.DW_MES_CONTAINER C
WHERE C.CONTAINERNAME LIKE :pattern ESCAPE '\'
ORDER BY C.CONTAINERNAME, C.CONTAINERNAME, C.CONTAINERID
