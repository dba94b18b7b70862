//! The image a deployment rolls out: the ECR reference, its manifest, and whether it has a linux
//! platform for the task definition's CPU architecture.

use serde::Serialize;

use crate::deploy::DeployError;

/// An image in ECR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry_id: String,
    pub region: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Parses `<account>.dkr.ecr.<region>.amazonaws.com/<repo>:tag` or `...@sha256:...`; a URI
/// with neither is refused (Docker would read `latest`, which moves).
pub fn parse_image(uri: &str) -> Result<ImageRef, DeployError> {
    let bad = || DeployError::NotEcrImage(uri.to_string());
    let (host, rest) = uri.split_once('/').ok_or_else(bad)?;
    let labels: Vec<&str> = host.split('.').collect();
    let is_ecr = labels.len() >= 6
        && labels[1] == "dkr"
        && (labels[2] == "ecr" || labels[2] == "ecr-fips")
        && labels[0].len() == 12
        && labels[0].chars().all(|c| c.is_ascii_digit())
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
    if !is_ecr {
        return Err(bad());
    }
    let (repo, tag, digest) = if let Some((repo, digest)) = rest.split_once('@') {
        if !digest.starts_with("sha256:") || digest.len() != 71 {
            return Err(bad());
        }
        (repo, None, Some(digest.to_string()))
    } else {
        match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string()), None),
            // No tag and no digest: Docker would read `latest`, which moves under a rollout.
            _ => return Err(DeployError::Input(format!(
                "{uri:?} names no version: add :<tag> or @sha256:<digest> (latest moves, a rollout must name what it rolls out)"
            ))),
        }
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
    };
    if !valid(repo) || tag.as_deref().is_some_and(str::is_empty) {
        return Err(bad());
    }
    Ok(ImageRef {
        registry_id: labels[0].to_string(),
        region: labels[3].to_string(),
        repository: repo.to_string(),
        tag,
        digest,
    })
}

/// The image must be in the stack's region (the task execution role pulls from the stack's
/// ECR repository; another region's image is another repository), checked before any call.
pub fn check_region(img: &ImageRef, uri: &str, stack_region: &str) -> Result<(), DeployError> {
    if img.region == stack_region {
        Ok(())
    } else {
        Err(DeployError::Input(format!(
            "{uri:?} is in {}, the stack in {stack_region}: push the image to the stack's ECR repository in {stack_region}",
            img.region
        )))
    }
}

/// One platform an image is built for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What a manifest says about platforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// A multi-platform image (OCI index or Docker manifest list): its platforms.
    Index(Vec<Platform>),
    /// A single-platform image: the platform is in its config blob.
    Single { config_digest: String },
}

/// The media types asked from ECR, so it returns a multi-platform index as it is.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Reads an image manifest (its media type from ECR, or from the document itself).
pub fn parse_manifest(media_type: Option<&str>, body: &str) -> Result<Manifest, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let media = media_type
        .map(str::to_string)
        .or_else(|| v["mediaType"].as_str().map(str::to_string))
        .unwrap_or_default();
    if let Some(list) = v["manifests"].as_array() {
        let platforms = list
            .iter()
            .filter_map(|m| {
                let p = &m["platform"];
                Some(Platform {
                    os: p["os"].as_str()?.to_string(),
                    architecture: p["architecture"].as_str()?.to_string(),
                    variant: p["variant"].as_str().map(str::to_string),
                })
            })
            // Attestation manifests (buildx provenance) say unknown/unknown: not a platform.
            .filter(|p| p.os != "unknown")
            .collect();
        return Ok(Manifest::Index(platforms));
    }
    if media.contains("manifest.v1+json") && media.contains("oci")
        || media.contains("manifest.v2+json")
        || v["config"].is_object()
    {
        let digest = v["config"]["digest"]
            .as_str()
            .ok_or("image manifest has no config.digest")?;
        return Ok(Manifest::Single {
            config_digest: digest.to_string(),
        });
    }
    Err(format!(
        "unsupported manifest media type {media:?} (schema 1 images cannot run on Fargate)"
    ))
}

/// The platform in an image config blob.
pub fn platform_from_config(body: &[u8]) -> Result<Platform, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("image config is not JSON: {e}"))?;
    Ok(Platform {
        os: v["os"]
            .as_str()
            .ok_or("image config has no os")?
            .to_string(),
        architecture: v["architecture"]
            .as_str()
            .ok_or("image config has no architecture")?
            .to_string(),
        variant: v["variant"].as_str().map(str::to_string),
    })
}

/// The OCI architecture name of an ECS `CpuArchitecture`.
pub fn oci_arch(cpu_architecture: &str) -> Result<&'static str, DeployError> {
    match cpu_architecture.to_ascii_uppercase().as_str() {
        "ARM64" => Ok("arm64"),
        "X86_64" => Ok("amd64"),
        other => Err(DeployError::Input(format!(
            "architecture {other:?} is not ARM64 or X86_64"
        ))),
    }
}

/// Refuses unless the image's platforms include linux/<arch> (ARM64 -> arm64, v8 or no variant).
pub fn check_platform(image: &str, arch: &str, platforms: &[Platform]) -> Result<(), DeployError> {
    let wanted = oci_arch(arch)?;
    let ok = platforms.iter().any(|p| {
        p.os == "linux"
            && p.architecture == wanted
            && (wanted != "arm64" || matches!(p.variant.as_deref(), None | Some("v8")))
    });
    if ok {
        return Ok(());
    }
    Err(DeployError::WrongPlatform {
        image: image.to_string(),
        arch: arch.to_ascii_uppercase(),
        wanted: wanted.to_string(),
        has: if platforms.is_empty() {
            "none".to_string()
        } else {
            platforms
                .iter()
                .map(Platform::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_uris() {
        let i =
            parse_image("123456789012.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.2").unwrap();
        assert_eq!(i.registry_id, "123456789012");
        assert_eq!(i.region, "us-east-2");
        assert_eq!(i.repository, "orderbroker");
        assert_eq!(i.tag.as_deref(), Some("1.4.2"));
        let d = format!(
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/team/orderbroker@sha256:{}",
            "a".repeat(64)
        );
        let i = parse_image(&d).unwrap();
        assert!(matches!(
            parse_image("123456789012.dkr.ecr.us-east-2.amazonaws.com/orderbroker"),
            Err(DeployError::Input(_))
        ));
        assert_eq!(i.repository, "team/orderbroker");
        assert!(i.digest.is_some() && i.tag.is_none());
        for bad in [
            "docker.io/library/nginx:1",
            "nginx",
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/",
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/x@sha256:short",
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/x:",
        ] {
            assert!(parse_image(bad).is_err(), "{bad}");
        }
    }
}
