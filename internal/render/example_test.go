package render_test

import (
	"fmt"

	"benchling-webhook/internal/render"
)

func ExampleLinks() {
	l := render.Links("catalog.example.com", "quilt-benchling", "benchling/etr_123")
	fmt.Println(l.Catalog)
	fmt.Println(l.Revise)
	fmt.Println(l.QuiltSync)
	// Output:
	// https://catalog.example.com/b/quilt-benchling/packages/benchling/etr_123
	// https://catalog.example.com/b/quilt-benchling/packages/benchling/etr_123?action=revisePackage
	// quilt+s3://quilt-benchling#package=benchling/etr_123&catalog=catalog.example.com
}

func ExampleDecodeEntry() {
	e, err := render.DecodeEntry([]byte(`{"entry":{"id":"etr_1","displayId":"EXP1","name":"Growth curve",
		"authors":[{"id":"ent_1","name":"Ada Lovelace","handle":"ada"}]}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.DisplayID, e.Name, e.Authors[0])
	_, err = render.DecodeEntry([]byte(`{"entry":{"name":"no id"}}`))
	fmt.Println(err)
	// Output:
	// EXP1 Growth curve Ada Lovelace <ada@ent_1>
	// render: invalid entry JSON: no "id"
}
