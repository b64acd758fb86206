"""企业平安指数 / safety index."""
