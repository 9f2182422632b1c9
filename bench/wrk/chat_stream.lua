-- wrk -s chat_stream.lua: streamed chat completions with usage (see common.lua).
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")
common.setup_chat(true)
done = common.report
