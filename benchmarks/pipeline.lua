-- wrk script: HTTP/1.1 pipelining. Each connection writes `depth` requests at once
-- (wrk's `request` is called again only when all of them are answered).
-- Usage: wrk -s pipeline.lua URL -- DEPTH
init = function(args)
  local depth = tonumber(args[1]) or 16
  local batch = {}
  for i = 1, depth do
    batch[i] = wrk.format()
  end
  pipelined = table.concat(batch)
end

request = function()
  return pipelined
end
