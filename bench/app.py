"""Sentinel with one extra route, /bench/empty, answering {} and doing nothing
else: the floor against which a route's own cost is measured."""

from sentinel import create_app_or_exit

app = create_app_or_exit()


@app.get("/bench/empty")
def empty():
    return {}
