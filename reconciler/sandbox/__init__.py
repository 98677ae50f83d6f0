"""Sandbox servers: faithful in-memory fakes of the external systems, plus a control API under /_sandbox/.

Nothing here imports the rest of the reconciler: each sandbox plays another company's server.
"""
