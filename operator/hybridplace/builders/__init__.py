"""Pure builders of the objects the operator creates: no Kubernetes I/O."""
