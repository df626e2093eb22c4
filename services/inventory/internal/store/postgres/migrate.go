package postgres

// Names that keep the inventory's migrations apart from those of other
// services, should they share a database.
const (
	migrationTable = "inventory_goose_db_version"
	// migrationLockID is the advisory lock held while migrating: "tinv".
	migrationLockID = 0x74696e76
)
