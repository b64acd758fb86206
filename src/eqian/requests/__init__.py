"""涉企诉求 / enterprise requests."""
