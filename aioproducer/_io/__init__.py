"""The asyncio shell: broker connections, the sender task, the clock."""
