"""OpenAI's API format, the gateway's canonical one."""
