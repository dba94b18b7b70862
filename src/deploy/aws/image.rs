//! Pre-flight: the image exists in ECR and has a linux platform for the architecture.

use super::Clients;
use crate::aws::{AwsError, AwsResultExt};
use crate::deploy::{
    check_platform, parse_image, parse_manifest, platform_from_config, DeployError, Manifest,
    MANIFEST_MEDIA_TYPES,
};

/// Pre-flight: the image has a linux platform for `arch`.
pub async fn check_image(c: &Clients, uri: &str, arch: &str) -> Result<String, DeployError> {
    use aws_sdk_ecr::types::ImageIdentifier;
    let img = parse_image(uri)?;
    let id = ImageIdentifier::builder()
        .set_image_tag(img.tag.clone())
        .set_image_digest(img.digest.clone())
        .build();
    let out = c
        .ecr
        .batch_get_image()
        .registry_id(&img.registry_id)
        .repository_name(&img.repository)
        .image_ids(id)
        .set_accepted_media_types(Some(
            MANIFEST_MEDIA_TYPES.iter().map(|m| m.to_string()).collect(),
        ))
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_ecr::operation::batch_get_image::BatchGetImageError;
            if matches!(
                e.as_service_error(),
                Some(BatchGetImageError::RepositoryNotFoundException(_))
            ) {
                DeployError::ImageNotFound {
                    image: uri.to_string(),
                    why: format!("repository {} does not exist", img.repository),
                }
            } else {
                AwsError::new("ecr:BatchGetImage", e).on(uri).into()
            }
        })?;
    let Some(image) = out.images().first() else {
        let why = out
            .failures()
            .first()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.failure_code().map(|c| c.as_str()).unwrap_or("?"),
                    f.failure_reason().unwrap_or("")
                )
            })
            .unwrap_or_else(|| "no such tag or digest".into());
        return Err(DeployError::ImageNotFound {
            image: uri.to_string(),
            why,
        });
    };
    let bad = |why: String| DeployError::BadManifest {
        image: uri.to_string(),
        why,
    };
    let manifest = parse_manifest(
        image.image_manifest_media_type(),
        image.image_manifest().unwrap_or_default(),
    )
    .map_err(bad)?;
    let platforms = match manifest {
        Manifest::Index(p) => p,
        Manifest::Single { config_digest } => {
            let url = c
                .ecr
                .get_download_url_for_layer()
                .registry_id(&img.registry_id)
                .repository_name(&img.repository)
                .layer_digest(&config_digest)
                .send()
                .await
                .aws("ecr:GetDownloadUrlForLayer")?
                .download_url
                .ok_or_else(|| bad("no download URL for the image config".into()))?;
            // The URL is presigned: it goes in no log and no error.
            let resp = c.http.get(url).send().await.map_err(|e| {
                bad(format!(
                    "fetching the image config failed: {}",
                    e.without_url()
                ))
            })?;
            if !resp.status().is_success() {
                return Err(bad(format!(
                    "fetching the image config answered HTTP {}",
                    resp.status().as_u16()
                )));
            }
            let body = resp
                .bytes()
                .await
                .map_err(|e| bad(format!("reading the image config: {}", e.without_url())))?;
            vec![platform_from_config(&body).map_err(bad)?]
        }
    };
    check_platform(uri, arch, &platforms)?;
    Ok(format!(
        "image {uri}: platforms {}",
        platforms
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
