package benchling_test

import (
	"fmt"

	"benchling-webhook/internal/benchling"
)

func ExampleDecodeEntry() {
	e, err := benchling.DecodeEntry([]byte(`{"entry":{"id":"etr_1","displayId":"EXP1","name":"Growth curve",
		"modifiedAt":"2025-03-30T23:37:22.777296+00:00","authors":[{"id":"ent_1","name":"Ada Lovelace","handle":"ada"}]}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.DisplayID, e.Name, e.Authors[0], e.ModifiedAt.Format("2006-01-02"))
	_, err = benchling.DecodeEntry([]byte(`{"entry":{"name":"no id"}}`))
	fmt.Println(err)
	// Output:
	// EXP1 Growth curve Ada Lovelace <ada@ent_1> 2025-03-30
	// benchling: invalid entry JSON: no "id"
}
