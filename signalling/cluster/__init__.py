"""Workers and nodes: which worker owns a session (Redis leases), how a request reaches it
(forwarded inside the cluster), and how a worker leaves (drain) or is lost (re-placement).

With embedded defaults (no Redis) there is one process and a trivial local registry."""
