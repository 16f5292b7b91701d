package sqlstore

const childEnv = "BULKHEAD_STORE_CHILD_DSN"

func durabilityChild() int { return 0 }
