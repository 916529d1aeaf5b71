"""Infrastructure any of Bulkhead's processes may use (the node's and the cells'): TOML tables, logs, the admin
socket, the data key, process supervision, frame streams, group commit and the database toolkit. Nothing here
knows messages, networks, routes or accounts."""
