//! OpenID Federation metadata policy: the operators `value`, `add`, `default`, `one_of`,
//! `subset_of`, `superset_of`, `essential`; merging superior and subordinate policies; and
//! applying the merged policy to a leaf's metadata.
//!
//! Semantics follow OpenID Federation 1.0. Where SPID's examples take liberties the
//! [`PolicyDialect`] decides (see its fields). Operators this code does not know are ignored,
//! unless listed in `metadata_policy_crit`, which then fails.

use super::Metadata;
use crate::oidc::profile::PolicyDialect;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A `metadata_policy` claim: entity type → parameter → operator → operand.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetadataPolicy(pub Map<String, Value>);

/// The operators understood here, in the order they are applied.
pub const OPERATORS: [&str; 7] = [
    "value",
    "add",
    "default",
    "one_of",
    "subset_of",
    "superset_of",
    "essential",
];

/// Why a policy could not be merged or applied. `param` is `entity_type.parameter`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A policy level that must be a JSON object is not.
    #[error("policy for {0} is not a JSON object")]
    NotAnObject(String),
    /// An operand has the wrong JSON type (e.g. `subset_of` not an array).
    #[error("{param}: bad operand for {op}")]
    BadOperand {
        /// The parameter.
        param: String,
        /// The operator.
        op: &'static str,
    },
    /// Superior and subordinate set incompatible values for one operator.
    #[error("{param}: {op} conflicts between superior and subordinate")]
    Conflict {
        /// The parameter.
        param: String,
        /// The operator.
        op: &'static str,
    },
    /// Operators that may not be combined, or whose operands contradict each other.
    #[error("{param}: illegal combination: {reason}")]
    BadCombination {
        /// The parameter.
        param: String,
        /// Why.
        reason: String,
    },
    /// `metadata_policy_crit` lists an operator this code does not implement.
    #[error("critical policy operator {0:?} not supported")]
    UnsupportedCriticalOperator(String),
    /// The metadata breaks the policy (`one_of`, `subset_of` leaving nothing, `superset_of`,
    /// or a type mismatch).
    #[error("{param}: metadata violates {op}: {detail}")]
    Violation {
        /// The parameter.
        param: String,
        /// The operator.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// An `essential` parameter is absent after the policy was applied.
    #[error("{0}: essential parameter missing")]
    EssentialMissing(String),
}

/// The operators set for one parameter.
#[derive(Debug, Clone, Default, PartialEq)]
struct ParamPolicy {
    /// `Some(Value::Null)` is a real `value: null` (remove the parameter).
    value: Option<Value>,
    add: Option<Vec<Value>>,
    default: Option<Value>,
    one_of: Option<Vec<Value>>,
    subset_of: Option<Vec<Value>>,
    superset_of: Option<Vec<Value>>,
    essential: Option<bool>,
}

/// JSON equality, plus `"true"`/`"false"` ≡ booleans when the dialect says so.
fn same(a: &Value, b: &Value, d: PolicyDialect) -> bool {
    if a == b {
        return true;
    }
    if !d.bool_strings {
        return false;
    }
    match (a, b) {
        (Value::Bool(x), Value::String(s)) | (Value::String(s), Value::Bool(x)) => {
            s == if *x { "true" } else { "false" }
        }
        _ => false,
    }
}

fn member(v: &Value, set: &[Value], d: PolicyDialect) -> bool {
    set.iter().any(|s| same(v, s, d))
}

fn is_subset(a: &[Value], b: &[Value], d: PolicyDialect) -> bool {
    a.iter().all(|v| member(v, b, d))
}

fn intersect(a: &[Value], b: &[Value], d: PolicyDialect) -> Vec<Value> {
    a.iter().filter(|v| member(v, b, d)).cloned().collect()
}

/// A set operation on operand arrays.
type SetOp = fn(&[Value], &[Value], PolicyDialect) -> Vec<Value>;

fn union(a: &[Value], b: &[Value], d: PolicyDialect) -> Vec<Value> {
    let mut out = a.to_vec();
    for v in b {
        if !member(v, &out, d) {
            out.push(v.clone());
        }
    }
    out
}

fn array_operand(param: &str, op: &'static str, v: &Value) -> Result<Vec<Value>, PolicyError> {
    v.as_array().cloned().ok_or(PolicyError::BadOperand {
        param: param.into(),
        op,
    })
}

impl ParamPolicy {
    fn parse(param: &str, v: &Value, crit: &[String]) -> Result<ParamPolicy, PolicyError> {
        let ops = v
            .as_object()
            .ok_or_else(|| PolicyError::NotAnObject(param.into()))?;
        let mut p = ParamPolicy::default();
        for (op, operand) in ops {
            match op.as_str() {
                "value" => p.value = Some(operand.clone()),
                // A scalar `add` is tolerated as a one-element array (seen in the wild).
                "add" => {
                    p.add = Some(match operand {
                        Value::Array(a) => a.clone(),
                        Value::Null => {
                            return Err(PolicyError::BadOperand {
                                param: param.into(),
                                op: "add",
                            })
                        }
                        other => vec![other.clone()],
                    })
                }
                "default" if operand.is_null() => {
                    return Err(PolicyError::BadOperand {
                        param: param.into(),
                        op: "default",
                    })
                }
                "default" => p.default = Some(operand.clone()),
                "one_of" => {
                    let set = array_operand(param, "one_of", operand)?;
                    // An empty one_of could never be satisfied: a malformed policy.
                    if set.is_empty() {
                        return Err(PolicyError::BadOperand {
                            param: param.into(),
                            op: "one_of",
                        });
                    }
                    p.one_of = Some(set)
                }
                "subset_of" => p.subset_of = Some(array_operand(param, "subset_of", operand)?),
                "superset_of" => {
                    p.superset_of = Some(array_operand(param, "superset_of", operand)?)
                }
                "essential" => {
                    p.essential = Some(operand.as_bool().ok_or(PolicyError::BadOperand {
                        param: param.into(),
                        op: "essential",
                    })?)
                }
                unknown if crit.iter().any(|c| c == unknown) => {
                    return Err(PolicyError::UnsupportedCriticalOperator(unknown.into()))
                }
                _ => {} // not critical: ignored, as OpenID Federation says
            }
        }
        Ok(p)
    }

    /// Checks that the operators of one (possibly merged) parameter policy fit together.
    fn check(&self, param: &str, d: PolicyDialect) -> Result<(), PolicyError> {
        let bad = |reason: &str| {
            Err(PolicyError::BadCombination {
                param: param.into(),
                reason: reason.into(),
            })
        };
        if self.one_of.is_some() && (self.subset_of.is_some() || self.superset_of.is_some()) {
            return bad("one_of with subset_of/superset_of");
        }
        if let (Some(sub), Some(sup)) = (&self.subset_of, &self.superset_of) {
            if !is_subset(sup, sub, d) {
                return bad("superset_of not within subset_of");
            }
        }
        if let (Some(add), Some(sub)) = (&self.add, &self.subset_of) {
            if !is_subset(add, sub, d) {
                return bad("add not within subset_of");
            }
        }
        let Some(value) = &self.value else {
            return Ok(());
        };
        if value.is_null() {
            if self.essential == Some(true) {
                return bad("value null with essential true");
            }
            if self.default.is_some() {
                return bad("value null with default");
            }
            return Ok(());
        }
        let as_list = match value {
            Value::Array(a) => a.clone(),
            scalar => vec![scalar.clone()],
        };
        if let Some(one_of) = &self.one_of {
            let ok = match value {
                Value::Array(a) => d.one_of_on_arrays && is_subset(a, one_of, d),
                v => member(v, one_of, d),
            };
            if !ok {
                return bad("value not in one_of");
            }
        }
        if let Some(sub) = &self.subset_of {
            if !value.is_array() || !is_subset(&as_list, sub, d) {
                return bad("value not within subset_of");
            }
        }
        if let Some(sup) = &self.superset_of {
            if !value.is_array() || !is_subset(sup, &as_list, d) {
                return bad("value not a superset of superset_of");
            }
        }
        if let Some(add) = &self.add {
            if !value.is_array() || !is_subset(add, &as_list, d) {
                return bad("add not within value");
            }
        }
        Ok(())
    }

    /// Merges a superior's policy (`self`) with a subordinate's; the result is at least as
    /// strict as both.
    fn merge(
        &self,
        sub: &ParamPolicy,
        param: &str,
        d: PolicyDialect,
    ) -> Result<ParamPolicy, PolicyError> {
        let conflict = |op| PolicyError::Conflict {
            param: param.into(),
            op,
        };
        let equal_or_conflict =
            |a: &Option<Value>, b: &Option<Value>, op| -> Result<Option<Value>, PolicyError> {
                match (a, b) {
                    (Some(x), Some(y)) if !same(x, y, d) => Err(conflict(op)),
                    (Some(x), _) | (None, Some(x)) => Ok(Some(x.clone())),
                    (None, None) => Ok(None),
                }
            };
        let both = |a: &Option<Vec<Value>>, b: &Option<Vec<Value>>, f: SetOp| match (a, b) {
            (Some(x), Some(y)) => Some(f(x, y, d)),
            (Some(x), None) | (None, Some(x)) => Some(x.clone()),
            (None, None) => None,
        };
        let merged = ParamPolicy {
            value: equal_or_conflict(&self.value, &sub.value, "value")?,
            add: both(&self.add, &sub.add, union),
            default: equal_or_conflict(&self.default, &sub.default, "default")?,
            one_of: both(&self.one_of, &sub.one_of, intersect),
            subset_of: both(&self.subset_of, &sub.subset_of, intersect),
            superset_of: both(&self.superset_of, &sub.superset_of, union),
            essential: match (self.essential, sub.essential) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(false) || b.unwrap_or(false)),
            },
        };
        if merged.one_of.as_ref().is_some_and(Vec::is_empty) {
            return Err(conflict("one_of"));
        }
        if d.empty_subset_is_error && merged.subset_of.as_ref().is_some_and(Vec::is_empty) {
            return Err(conflict("subset_of"));
        }
        merged.check(param, d)?;
        Ok(merged)
    }

    /// Applies the operators, in OpenID Federation order, to one parameter of `md`.
    fn apply(
        &self,
        name: &str,
        param: &str,
        md: &mut Map<String, Value>,
        d: PolicyDialect,
    ) -> Result<(), PolicyError> {
        let violation = |op, detail: &str| PolicyError::Violation {
            param: param.into(),
            op,
            detail: detail.into(),
        };
        match &self.value {
            Some(Value::Null) => {
                md.remove(name);
            }
            Some(v) => {
                md.insert(name.into(), v.clone());
            }
            None => {}
        }
        if let Some(add) = &self.add {
            let merged = match md.get(name) {
                None => add.clone(),
                Some(Value::Array(cur)) => union(cur, add, d),
                Some(_) => return Err(violation("add", "parameter is not an array")),
            };
            md.insert(name.into(), Value::Array(merged));
        }
        if let Some(default) = &self.default {
            if !md.contains_key(name) {
                md.insert(name.into(), default.clone());
            }
        }
        if let (Some(one_of), Some(cur)) = (&self.one_of, md.get(name)) {
            match cur {
                Value::Array(items) if d.one_of_on_arrays && !is_subset(items, one_of, d) => {
                    return Err(violation("one_of", "an element is not allowed"))
                }
                Value::Array(_) if d.one_of_on_arrays => {}
                Value::Array(_) => return Err(violation("one_of", "parameter is an array")),
                v if !member(v, one_of, d) => {
                    return Err(violation("one_of", &format!("{v} not allowed")))
                }
                _ => {}
            }
        }
        if let Some(subset) = &self.subset_of {
            if let Some(cur) = md.get(name) {
                let items = cur
                    .as_array()
                    .ok_or_else(|| violation("subset_of", "parameter is not an array"))?;
                let kept = intersect(items, subset, d);
                if kept.is_empty() && d.empty_subset_is_error {
                    return Err(violation("subset_of", "no allowed value left"));
                }
                md.insert(name.into(), Value::Array(kept));
            }
        }
        if let (Some(superset), Some(cur)) = (&self.superset_of, md.get(name)) {
            let items = cur
                .as_array()
                .ok_or_else(|| violation("superset_of", "parameter is not an array"))?;
            if !is_subset(superset, items, d) {
                return Err(violation("superset_of", "a required value is missing"));
            }
        }
        if self.essential == Some(true) && !md.contains_key(name) {
            return Err(PolicyError::EssentialMissing(param.into()));
        }
        Ok(())
    }
}

/// The policy for one entity type, parsed.
type TypePolicy = Vec<(String, ParamPolicy)>;

fn parse_type_policy(
    entity_type: &str,
    v: &Value,
    crit: &[String],
    d: PolicyDialect,
) -> Result<TypePolicy, PolicyError> {
    let params = v
        .as_object()
        .ok_or_else(|| PolicyError::NotAnObject(entity_type.into()))?;
    params
        .iter()
        .map(|(name, ops)| {
            let path = format!("{entity_type}.{name}");
            let p = ParamPolicy::parse(&path, ops, crit)?;
            p.check(&path, d)?;
            Ok((name.clone(), p))
        })
        .collect()
}

fn merge_type(
    entity_type: &str,
    superior: TypePolicy,
    subordinate: TypePolicy,
    d: PolicyDialect,
) -> Result<TypePolicy, PolicyError> {
    let mut out = superior;
    for (name, sub) in subordinate {
        let path = format!("{entity_type}.{name}");
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, sup)) => *sup = sup.merge(&sub, &path, d)?,
            None => out.push((name, sub)),
        }
    }
    Ok(out)
}

/// Checks that `crit` names only operators implemented here.
fn check_crit(crit: &[String]) -> Result<(), PolicyError> {
    match crit.iter().find(|c| !OPERATORS.contains(&c.as_str())) {
        Some(c) => Err(PolicyError::UnsupportedCriticalOperator(c.clone())),
        None => Ok(()),
    }
}

/// Merges policies given top-down (trust anchor first, then each intermediate), per entity
/// type, into one policy.
pub fn merge_policies(
    policies: &[&MetadataPolicy],
    crit: &[String],
    dialect: PolicyDialect,
) -> Result<MetadataPolicy, PolicyError> {
    check_crit(crit)?;
    let mut merged: Vec<(String, TypePolicy)> = Vec::new();
    for policy in policies {
        for (entity_type, v) in &policy.0 {
            let parsed = parse_type_policy(entity_type, v, crit, dialect)?;
            match merged.iter_mut().find(|(t, _)| t == entity_type) {
                Some((_, existing)) => {
                    let sup = std::mem::take(existing);
                    *existing = merge_type(entity_type, sup, parsed, dialect)?;
                }
                None => merged.push((entity_type.clone(), parsed)),
            }
        }
    }
    Ok(MetadataPolicy(
        merged
            .into_iter()
            .map(|(t, params)| {
                let obj = params
                    .into_iter()
                    .map(|(name, p)| (name, p.to_value()))
                    .collect();
                (t, Value::Object(obj))
            })
            .collect(),
    ))
}

impl ParamPolicy {
    fn to_value(&self) -> Value {
        let mut m = Map::new();
        let arr = |v: &Vec<Value>| Value::Array(v.clone());
        if let Some(v) = &self.value {
            m.insert("value".into(), v.clone());
        }
        if let Some(v) = &self.add {
            m.insert("add".into(), arr(v));
        }
        if let Some(v) = &self.default {
            m.insert("default".into(), v.clone());
        }
        if let Some(v) = &self.one_of {
            m.insert("one_of".into(), arr(v));
        }
        if let Some(v) = &self.subset_of {
            m.insert("subset_of".into(), arr(v));
        }
        if let Some(v) = &self.superset_of {
            m.insert("superset_of".into(), arr(v));
        }
        if let Some(v) = self.essential {
            m.insert("essential".into(), Value::Bool(v));
        }
        Value::Object(m)
    }
}

/// Applies a (merged) policy to metadata. Entity types absent from the metadata are left
/// absent; parameters without a policy are kept unchanged.
pub fn apply_policy(
    metadata: &Metadata,
    policy: &MetadataPolicy,
    dialect: PolicyDialect,
) -> Result<Metadata, PolicyError> {
    let mut out = metadata.clone();
    for (entity_type, v) in &policy.0 {
        let Some(Value::Object(md)) = out.0.get_mut(entity_type) else {
            continue;
        };
        for (name, p) in parse_type_policy(entity_type, v, &[], dialect)? {
            p.apply(&name, &format!("{entity_type}.{name}"), md, dialect)?;
        }
    }
    Ok(out)
}

/// Merges `policies` (top-down) and applies the result to `metadata`.
pub fn resolve_metadata(
    metadata: &Metadata,
    policies: &[&MetadataPolicy],
    crit: &[String],
    dialect: PolicyDialect,
) -> Result<Metadata, PolicyError> {
    let merged = merge_policies(policies, crit, dialect)?;
    apply_policy(metadata, &merged, dialect)
}

#[cfg(test)]
mod tests;
