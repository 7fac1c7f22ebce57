"""The MCP gateway (`proctor mcp-gateway`): one MCP server in front of the agent's MCP servers,
so every tool call of any MCP client is a governed action `mcp:<server>:<tool>`.

`config` reads `mcp.yaml`, `upstream` keeps each upstream connected, `calls` governs a call,
`hiding` decides which tools policy denies outright, `server` routes the client's requests and
`run` starts it all. Installed with `pip install 'proctor[mcp]'`.
"""
