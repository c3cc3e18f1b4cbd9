"""Operations on a course's cluster: deploy with its pre-flight, secrets (sops), the post-deploy health check."""
