"""The engine: how flow and task calls run, retry, time out and get recorded."""
