"""民芯对讲 / messaging."""
