"""The operator: kopf handlers (thin), the work queue and reconcilers, Kubernetes I/O."""
