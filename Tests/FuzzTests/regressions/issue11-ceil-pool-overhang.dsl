# issue 11: valid by Grammar.md (a ceil-mode window may overhang), refused by the engine
input 1x1x1
pool max 2 2 ceil
