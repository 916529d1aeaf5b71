"""Links: TCP connections to and from peers (trio). One reader per connection, one batching writer,
one pending-request table per outbound link."""
