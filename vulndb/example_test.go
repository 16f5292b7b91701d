package vulndb_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/bulkhead-sec/bulkhead/vulndb"
)

func Example() {
	dir, _ := os.MkdirTemp("", "vulndb-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "osv.db")

	// Import OSV records (a directory here; zip files and single JSON files
	// work too), then look a package up.
	if _, err := vulndb.Import(context.Background(), path, []string{"testdata/osv"}, vulndb.Options{}); err != nil {
		log.Fatal(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	vulns, err := db.Lookup("PyPI", "Django") // PyPI names are compared after PEP 503 normalisation
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range vulns {
		fmt.Println(v.GetId(), v.GetAliases())
	}
	// Output:
	// PYSEC-2007-1 [CVE-2007-5712]
	// PYSEC-2008-1 [CVE-2008-2302]
	// PYSEC-2008-2 [CVE-2008-3909]
}

func ExampleEnsureBundled() {
	dir, _ := os.MkdirTemp("", "vulndb-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "osv.db")

	// With no database yet, build one from the snapshot inside the binary.
	if _, err := vulndb.EnsureBundled(path); err != nil {
		log.Fatal(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	st, _ := db.Status()
	m, _ := vulndb.Bundled()
	fmt.Println(st.Records == m.Records, st.Updated.Equal(m.Date))
	// Output: true true
}
