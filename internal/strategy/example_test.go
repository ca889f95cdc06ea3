package strategy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/strategy"
)

func ExampleCompile() {
	u := strategy.NewUniverse([]*strategy.Model{
		{ID: "gpt-4o", ProviderID: "openai", AuthorID: "openai", Known: true, Pricing: catalog.Pricing{Input: 2_500_000}},
		{ID: "gpt-4o-mini", ProviderID: "openai", AuthorID: "openai", Known: true, Pricing: catalog.Pricing{Input: 150_000}},
		{ID: "claude-sonnet-4", ProviderID: "anthropic", AuthorID: "anthropic", Known: true, Pricing: catalog.Pricing{Input: 3_000_000}},
	})
	p, err := strategy.Compile(strategy.Models, []string{
		"ai.models.get('mistral', 'large')",
		"ai.models.underCost('text.input', 2.8).sortByDesc(m, m.pricing.input)",
		"ai.models",
	}, strategy.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The caller's loop: the first non-empty result wins; a lookup that
	// found nothing counts as empty.
	for i := range p.Len() {
		ms, err := p.EvalModels(context.Background(), i, u, &strategy.Request{API: "chat_completions"})
		if errors.Is(err, strategy.ErrNotFound) {
			fmt.Printf("strategy %d: nothing\n", i)
			continue
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, m := range ms {
			fmt.Printf("strategy %d: %s:%s\n", i, m.ProviderID, m.ID)
		}
		break
	}

	_, err = strategy.Compile(strategy.Models, []string{"ai.models.filter(m, m.prce < 1.0)"}, strategy.Options{})
	fmt.Println(err)
	// Output:
	// strategy 0: nothing
	// strategy 1: openai:gpt-4o
	// strategy 1: openai:gpt-4o-mini
	// strategy 0 "ai.models.filter(m, m.prce < 1.0)" at 1:22: undefined field 'prce'
}
