"""数字驾驶舱 / cockpit."""
