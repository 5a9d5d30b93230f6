"""After the call: the post-call satisfaction survey and callbacks (missed calls, 回访)."""
