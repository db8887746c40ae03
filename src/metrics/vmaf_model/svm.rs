//! The support vector machine of a VMAF model (`model_dict.model`, libsvm's
//! text), checked as libvmaf 2.3.1 reads it (`svm.cpp`, a header of
//! `key value...` lines, `SV`, then one line per support vector) and as its
//! prediction uses it: a regression (`svm_predict` reads the first row of
//! coefficients and `rho[0]`, which only a two-class header sizes), a
//! kernel computed on the features (a precomputed one indexes the feature
//! list by a support vector's value), every support vector the header
//! counts, on features the model names. libvmaf's reader stops its header
//! at an empty field and allocates by whatever counts it has read by then,
//! so an incomplete header crashes the first prediction; it is refused
//! here instead.

/// The regression types libvmaf can predict with, as libsvm names them.
const REGRESSIONS: [&str; 2] = ["epsilon_svr", "nu_svr"];

/// The kernels libsvm computes on the features.
const KERNELS: [&str; 4] = ["linear", "polynomial", "rbf", "sigmoid"];

fn number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("'{text}' is not a finite number")),
    }
}

fn whole(text: &str) -> Result<i32, String> {
    text.parse::<i32>()
        .map_err(|_| format!("'{text}' is not a whole number"))
}

/// The header's values that prediction needs.
#[derive(Default)]
struct Header<'a> {
    seen: Vec<&'a str>,
    nr_class: Option<i32>,
    total_sv: Option<i32>,
}

impl<'a> Header<'a> {
    /// Reads one header line.
    fn line(&mut self, line: &'a str) -> Result<(), String> {
        let mut fields = line.split(' ');
        let key = fields.next().unwrap_or("");
        let values: Vec<&str> = fields.collect();
        if key.is_empty() || values.iter().any(|v| v.is_empty()) {
            return Err(
                "an empty field (an empty line, two spaces or a space at the end), where \
                 libvmaf stops reading the header"
                    .to_string(),
            );
        }
        if self.seen.contains(&key) {
            return Err(format!("'{key}' is given twice"));
        }
        self.seen.push(key);
        let one = || match values.as_slice() {
            [v] => Ok(*v),
            _ => Err(format!("'{key}' takes one value, not {}", values.len())),
        };
        // rho, label, ... are read as many as nr_class says
        let counted = |n: usize| match self.nr_class {
            None => Err(format!("'{key}' comes before 'nr_class', which sizes it")),
            Some(_) if values.len() != n => Err(format!(
                "'{key}' takes {n} value(s) with 2 classes, not {}",
                values.len()
            )),
            Some(_) => Ok(()),
        };
        match key {
            "svm_type" => {
                let t = one()?;
                if !REGRESSIONS.contains(&t) {
                    return Err(format!(
                        "svm_type '{t}': libvmaf predicts with a regression ({})",
                        REGRESSIONS.join(" or ")
                    ));
                }
            }
            "kernel_type" => {
                let k = one()?;
                if !KERNELS.contains(&k) {
                    return Err(format!(
                        "kernel_type '{k}': libvmaf computes {} kernels on the features",
                        KERNELS.join(", ")
                    ));
                }
            }
            "degree" => {
                whole(one()?)?;
            }
            "gamma" | "coef0" => {
                number(one()?)?;
            }
            "nr_class" => match whole(one()?)? {
                2 => self.nr_class = Some(2),
                n => return Err(format!("nr_class is {n}: a regression has 2")),
            },
            "total_sv" => match whole(one()?)? {
                n if n >= 1 => self.total_sv = Some(n),
                n => return Err(format!("total_sv is {n}: it needs at least 1")),
            },
            "rho" | "probA" | "probB" => {
                counted(1)?;
                number(values[0])?;
            }
            "label" | "nr_sv" => {
                counted(2)?;
                for v in &values {
                    whole(v)?;
                }
            }
            _ => return Err(format!("'{key}' is not a line of libsvm's header")),
        }
        Ok(())
    }

    /// The header's missing lines, if any.
    fn complete(&self) -> Result<usize, String> {
        let missing: Vec<&str> = ["svm_type", "kernel_type", "nr_class", "total_sv", "rho"]
            .into_iter()
            .filter(|k| !self.seen.contains(k))
            .collect();
        match self.total_sv {
            Some(n) if missing.is_empty() => Ok(n as usize),
            _ => Err(format!("the header has no {}", missing.join(", "))),
        }
    }
}

/// Checks one support vector line: a coefficient, then `index:value`
/// pairs on features 1 to `features`, in increasing order.
fn support_vector(line: &str, features: usize) -> Result<(), String> {
    let mut fields = line.split_ascii_whitespace();
    number(fields.next().ok_or("an empty line")?)?;
    let mut last = 0;
    for f in fields {
        let (i, v) = f
            .split_once(':')
            .ok_or_else(|| format!("'{f}' is not INDEX:VALUE"))?;
        let i = whole(i)?;
        if i <= last {
            return Err(format!(
                "feature {i} after feature {last}: libsvm lists them in increasing order"
            ));
        }
        if i as usize > features {
            return Err(format!(
                "feature {i}, but the model names {features} feature(s)"
            ));
        }
        number(v)?;
        last = i;
    }
    Ok(())
}

/// Checks `text`, the SVM of a model that names `features` features.
pub fn check(text: &str, features: usize) -> Result<(), String> {
    // lines, not counting the newline that ends the text
    let mut lines = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .enumerate();
    let at = |n: usize, e: String| format!("line {}: {e}", n + 1);
    let mut header = Header::default();
    loop {
        match lines.next() {
            None => return Err("no 'SV' line before the support vectors".to_string()),
            Some((_, "SV")) => break,
            Some((n, line)) => header.line(line).map_err(|e| at(n, e))?,
        }
    }
    let total = header.complete()?;
    for k in 0..total {
        let (n, line) = lines
            .next()
            .ok_or_else(|| format!("total_sv is {total}, but {k} support vector(s) follow 'SV'"))?;
        support_vector(line, features).map_err(|e| at(n, e))?;
    }
    if let Some((n, _)) = lines.find(|(_, l)| !l.trim().is_empty()) {
        return Err(at(
            n,
            format!("more support vectors than total_sv ({total})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "svm_type nu_svr\nkernel_type rbf\ngamma 0.04\nnr_class 2\n\
                        total_sv 2\nrho -1.33\nSV\n-4 1:0.65 2:0.34 \n4 1:0.87 3:1e-3\n";

    #[test]
    fn a_complete_regression_passes() {
        check(GOOD, 3).unwrap();
        check(
            &GOOD.replace("rbf", "linear").replace("\ngamma 0.04", ""),
            3,
        )
        .unwrap();
    }

    #[test]
    fn what_libvmaf_would_crash_on_or_misread_is_refused() {
        for (text, features, says) in [
            ("svm_type nu_svr\nkernel_type rbf\n", 3, "no 'SV' line"),
            (
                "svm_type nu_svr\nkernel_type rbf\nSV\n",
                3,
                "no nr_class, total_sv, rho",
            ),
            (&GOOD.replace("nr_class 2\n", ""), 3, "before 'nr_class'"),
            (
                &GOOD.replace("nr_class 2", "nr_class 3"),
                3,
                "nr_class is 3",
            ),
            (
                &GOOD.replace("nr_class 2", "nr_class 0"),
                3,
                "nr_class is 0",
            ),
            (&GOOD.replace("nu_svr", "c_svc"), 3, "a regression"),
            (&GOOD.replace("rbf", "precomputed"), 3, "kernel_type"),
            (&GOOD.replace("gamma 0.04", "gamma 0.04 "), 3, "empty field"),
            (&GOOD.replace("gamma 0.04\n", "\n"), 3, "empty field"),
            (&GOOD.replace("gamma 0.04", "gamma nan"), 3, "not a finite"),
            (&GOOD.replace("rho -1.33", "rho -1.33 2"), 3, "1 value(s)"),
            (
                &GOOD.replace("total_sv 2", "total_sv 3"),
                3,
                "2 support vector",
            ),
            (&GOOD.replace("total_sv 2", "total_sv 1"), 3, "more support"),
            (&GOOD.replace("total_sv 2", "total_sv -1"), 3, "at least 1"),
            (&GOOD.replace("3:1e-3", "3:inf"), 3, "not a finite"),
            (GOOD, 2, "feature 3, but the model names 2"),
            (&GOOD.replace("1:0.87 3", "3:0.87 1"), 3, "increasing"),
            (&GOOD.replace("1:0.87", "1=0.87"), 3, "INDEX:VALUE"),
            (&GOOD.replace("-4 1", "x 1"), 3, "not a finite"),
            (&GOOD.replace("gamma", "gamma 1\ngamma"), 3, "twice"),
            (&GOOD.replace("gamma", "weight"), 3, "not a line"),
        ] {
            let e = check(text, features).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
