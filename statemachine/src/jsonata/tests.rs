use serde_json::{Map, Value, json};

use super::*;

fn bound(input: Value, vars: Value) -> Bound {
    let Value::Object(vars) = vars else {
        panic!("vars must be an object")
    };
    Bound::new(
        States {
            input: &input,
            result: None,
            error_output: None,
            context: json!({"Execution": {"Name": "e1"}}),
        },
        &vars,
        1_700_000_000_000,
        &RandomSource::new(7),
    )
}

fn eval(template: Value, input: Value) -> Result<Value, QueryError> {
    Template::compile(&template)
        .unwrap()
        .evaluate("Output", &bound(input, json!({})))
}

#[test]
fn only_whole_braced_strings_are_expressions() {
    let template = json!({
        "expr": "{% $states.input.a + 1 %}",
        "spaced": " {% $states.input.a %} ",
        "jsonpath.$": "$.a",
        "nested": [1, "{% $states.input.a * 2 %}", {"deep": "{%$states.context.Execution.Name%}"}],
    });
    assert_eq!(
        eval(template, json!({"a": 2})).unwrap(),
        json!({"expr": 3, "spaced": " {% $states.input.a %} ", "jsonpath.$": "$.a", "nested": [1, 4, {"deep": "e1"}]})
    );
}

#[test]
fn workflow_variables_are_bound_not_pasted() {
    let template = Template::compile(&json!("{% $greeting & ', ' & $name %}")).unwrap();
    // A value that would break an expression were it pasted into the text.
    let value = bound(json!({}), json!({"greeting": "hi", "name": "') & $eval('1"}));
    assert_eq!(template.evaluate("Output", &value).unwrap(), json!("hi, ') & $eval('1"));
}

#[test]
fn undefined_and_thrown_errors_are_worded_as_aws_words_them() {
    let undefined = eval(json!({"result": "{% $doesNotExist %}"}), json!({})).unwrap_err();
    assert_eq!(
        undefined.to_string(),
        "The JSONata expression '$doesNotExist' specified for the field 'Output/result' returned nothing (undefined)."
    );
    let threw = eval(json!("{% $randomSeeded(1) %}"), json!({})).unwrap_err();
    assert_eq!(
        threw.to_string(),
        "The JSONata expression '$randomSeeded(1)' specified for the field 'Output' threw an error during evaluation. T1006: Attempted to invoke a non-function"
    );
}

#[test]
fn aws_functions_and_the_missing_eval() {
    let input = json!({"xs": [1, 2, 3, 4, 5], "doc": "{\"a\": [1, 2]}"});
    let out = eval(
        json!({
            "partition": "{% $partition($states.input.xs, 2) %}",
            "range": "{% $range(0, 10, 2) %}",
            "down": "{% $range(3, 1, -1) %}",
            "sha": "{% $hash('abc', 'SHA-256') %}",
            "md5": "{% $hash('abc', 'MD5') %}",
            "parsed": "{% $parse($states.input.doc) %}",
            "seeded": "{% $random(42) = $random(42) %}",
            "unit": "{% $random() >= 0 and $random() < 1 %}",
            "uuid": "{% $length($uuid()) %}",
            "now": "{% $millis() %}",
        }),
        input,
    )
    .unwrap();
    assert_eq!(out["partition"], json!([[1, 2], [3, 4], [5]]));
    assert_eq!(out["range"], json!([0, 2, 4, 6, 8, 10]));
    assert_eq!(out["down"], json!([3, 2, 1]));
    assert_eq!(
        out["sha"],
        json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(out["md5"], json!("900150983cd24fb0d6963f7d28e17f72"));
    assert_eq!(out["parsed"], json!({"a": [1, 2]}));
    assert_eq!(out["seeded"], json!(true));
    assert_eq!(out["unit"], json!(true));
    assert_eq!(out["uuid"], json!(36));
    assert_eq!(out["now"], json!(1_700_000_000_000_i64));
    let eval_refused = eval(json!("{% $eval('1 + 1') %}"), json!({})).unwrap_err();
    assert!(
        eval_refused.to_string().contains("$eval is not available"),
        "{eval_refused}"
    );
}

#[test]
fn the_same_seed_gives_the_same_draws_and_another_seed_others() {
    let template = Template::compile(&json!(["{% $random() %}", "{% $uuid() %}"])).unwrap();
    let draw = |seed| {
        let bound = Bound::new(
            States {
                input: &Value::Null,
                result: None,
                error_output: None,
                context: Value::Null,
            },
            &Map::new(),
            0,
            &RandomSource::new(seed),
        );
        template.evaluate("Output", &bound).unwrap()
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
}

#[test]
fn operators_newer_than_2_0_6_and_syntax_errors_do_not_compile() {
    for (text, expected) in [
        ("{% $states.input.a ?? 1 %}", "'??'"),
        ("{% $states.input.a ?: 1 %}", "'?:'"),
        ("{% $states.input.( %}", "does not compile"),
    ] {
        let (pointer, message) = Template::compile(&json!({"x": [text]})).unwrap_err();
        assert_eq!(pointer, "/x/0");
        assert!(message.contains(expected), "{text}: {message}");
    }
}
