"""Operations: the admin channel and metrics."""
