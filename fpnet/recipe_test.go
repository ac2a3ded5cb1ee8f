package fpnet

import "testing"

func TestRecipes(t *testing.T) {
	r, err := RecipeByName("openai2017")
	if err != nil || r.ScaleExp != 125 || r.ProductEnv.String() != "IEEE" || r.ElementEnv.String() != "FTZ_DAZ" {
		t.Errorf("openai2017 = %+v, %v", r, err)
	}
	for _, bad := range []string{"nope", "ftz@x", "ftz@200", "ieee@-1", "ftz@1e2"} {
		if _, err := RecipeByName(bad); err == nil {
			t.Errorf("RecipeByName(%q) accepted", bad)
		}
	}
	if r, err := RecipeByName("ftz@120"); err != nil || r.ScaleExp != 120 {
		t.Errorf("ftz@120 = %+v, %v", r, err)
	}
}
