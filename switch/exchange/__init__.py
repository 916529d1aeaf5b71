"""The exchange: one request's way through the switch (lifecycle, pipeline steps, reversals, stand-in)."""
