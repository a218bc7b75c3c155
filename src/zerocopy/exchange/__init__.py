"""Exchange: protocols, edges as data, the planner, and ``to`` / ``explain``."""
