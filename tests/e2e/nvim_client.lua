-- Headless Neovim 0.7 as an LSP client of promptxray (driven by test_neovim.py).
-- Inputs come from the environment; the result (or the error) goes to PX_OUT as JSON.
local env = vim.env
local out_path = env.PX_OUT
local result = { diagnostics = {}, raw_diagnostics = {}, hover = nil, error = nil, events = {} }
local client_id = nil
local exited = nil

local function log(msg)
  table.insert(result.events, string.format("%.2f %s", vim.loop.hrtime() / 1e9, msg))
end

local function write_result()
  local f = assert(io.open(out_path, "w"))
  f:write(vim.fn.json_encode(result))
  f:close()
end

local function hover_text(contents)
  if type(contents) == "string" then
    return contents
  end
  if type(contents) ~= "table" then
    return ""
  end
  if contents.value ~= nil then -- MarkupContent or { language, value }
    return contents.value
  end
  local parts = {} -- MarkedString[]
  for _, c in ipairs(contents) do
    table.insert(parts, hover_text(c))
  end
  return table.concat(parts, "\n")
end

local function main()
  local timeout_ms = tonumber(env.PX_TIMEOUT_MS or "120000")
  vim.cmd("edit " .. vim.fn.fnameescape(env.PX_FILE))
  local bufnr = vim.api.nvim_get_current_buf()
  local uri = vim.uri_from_bufnr(bufnr)

  local init_options = vim.fn.json_decode(env.PX_INIT_OPTIONS)
  client_id = vim.lsp.start_client({
    name = "promptxray",
    cmd = { env.PX_PYTHON, "-m", "promptxray.server" },
    root_dir = env.PX_ROOT,
    init_options = init_options,
    handlers = {
      ["textDocument/publishDiagnostics"] = function(err, params, ctx, config)
        if params and params.uri == uri then
          log("publishDiagnostics: " .. #params.diagnostics)
          for _, d in ipairs(params.diagnostics) do
            table.insert(result.raw_diagnostics, { message = d.message, severity = d.severity, source = d.source })
          end
        end
        return vim.lsp.handlers["textDocument/publishDiagnostics"](err, params, ctx, config)
      end,
    },
    on_exit = function(code, signal)
      exited = { code = code, signal = signal }
    end,
  })
  if not client_id then
    error("vim.lsp.start_client returned nil")
  end
  log("client started: " .. client_id)
  if not vim.lsp.buf_attach_client(bufnr, client_id) then
    error("vim.lsp.buf_attach_client failed")
  end

  local got = vim.wait(timeout_ms, function()
    return exited ~= nil or #vim.diagnostic.get(bufnr) > 0
  end, 100)
  if exited then
    error(string.format("server exited early: code=%s signal=%s", exited.code, exited.signal))
  end
  if not got then
    error(string.format("no diagnostics within %d ms", timeout_ms))
  end
  log("diagnostics arrived")
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(result.diagnostics, {
      message = d.message,
      severity = d.severity,
      source = d.source,
      lnum = d.lnum,
      col = d.col,
    })
  end

  local params = {
    textDocument = { uri = uri },
    position = { line = tonumber(env.PX_LINE), character = tonumber(env.PX_COL) },
  }
  local responses, err = vim.lsp.buf_request_sync(bufnr, "textDocument/hover", params, 30000)
  if not responses then
    error("hover request failed: " .. tostring(err))
  end
  local resp = responses[client_id]
  if not resp then
    error("no hover response from the client")
  end
  if resp.err then
    error("hover error: " .. vim.inspect(resp.err))
  end
  if resp.result and resp.result ~= vim.NIL then
    result.hover = hover_text(resp.result.contents)
  end
  log("hover done")
end

local ok, err = pcall(main)
if not ok then
  result.error = tostring(err)
end
if client_id then
  vim.lsp.stop_client(client_id)
  local stopped = vim.wait(10000, function()
    return exited ~= nil
  end, 50)
  log("client stopped: " .. tostring(stopped))
  result.exit = exited
end
local wok, werr = pcall(write_result)
if not wok then
  io.stderr:write("could not write result: " .. tostring(werr) .. "\n")
end
vim.cmd("qa!")
