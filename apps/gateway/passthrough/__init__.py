"""Pass-through routes: provider SDKs in their own wire format, behind the gateway's keys.

``/anthropic``, ``/openai`` and ``/azure`` reuse the gateway's Messages and OpenAI endpoints
(their formats are client dialects already); ``/gemini``, ``/vertex_ai`` and ``/bedrock`` relay
the client's native body to a deployment of that provider and its answer back byte for byte
(``native``), with usage and cost read from the native answer.
"""
