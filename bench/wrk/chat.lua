-- wrk -s chat.lua: non-stream chat completions (see common.lua for the environment).
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")
common.setup_chat(false)
done = common.report
