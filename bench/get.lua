-- wrk script for bench/run.sh: plain GETs of wrk's URL, with the shared BENCH line at the end.
dofile("bench/report.lua")
