package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ociImage is one image read back from an OCI layout directory (what
// `buildah push IMAGE oci:DIR` writes): its config and, per layer, the
// compressed size (what a registry stores and ECS pulls) and the entries.
type ociImage struct {
	Config ociConfig
	Layers []ociLayer
}

type ociConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string            `json:"User"`
		Env        []string          `json:"Env"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

type ociLayer struct {
	MediaType string
	Size      int64 // compressed, as stored in the registry
	Unpacked  int64 // sum of the regular files' sizes
	Entries   []ociEntry
}

// ociEntry is one tar entry; Name is clean and relative ("etc/passwd").
// Data is kept for regular files.
type ociEntry struct {
	Name string
	Type byte
	Mode int64
	UID  int
	GID  int
	Data []byte
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// readOCILayout reads the only image in the OCI layout at dir.
func readOCILayout(dir string) (*ociImage, error) {
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := readJSON(filepath.Join(dir, "index.json"), &index); err != nil {
		return nil, err
	}
	if len(index.Manifests) != 1 {
		return nil, fmt.Errorf("oci layout %s: %d manifests, want 1", dir, len(index.Manifests))
	}
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := readJSON(blobPath(dir, index.Manifests[0].Digest), &manifest); err != nil {
		return nil, err
	}
	img := &ociImage{}
	if err := readJSON(blobPath(dir, manifest.Config.Digest), &img.Config); err != nil {
		return nil, err
	}
	for _, d := range manifest.Layers {
		l, err := readLayer(blobPath(dir, d.Digest), d.MediaType)
		if err != nil {
			return nil, err
		}
		l.Size = d.Size
		img.Layers = append(img.Layers, *l)
	}
	return img, nil
}

func readLayer(file, mediaType string) (*ociLayer, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(mediaType, "+gzip"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", file, err)
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(mediaType, ".tar"):
	default:
		return nil, fmt.Errorf("layer %s: unsupported media type %s", file, mediaType)
	}
	l := &ociLayer{MediaType: mediaType}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return l, nil
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", file, err)
		}
		e := ociEntry{
			Name: strings.TrimPrefix(path.Clean("/"+h.Name), "/"),
			Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid,
		}
		if e.Name == "" {
			continue // the layer's root directory
		}
		if h.Typeflag == tar.TypeReg {
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, tr); err != nil {
				return nil, fmt.Errorf("layer %s: %s: %w", file, h.Name, err)
			}
			e.Data = buf.Bytes()
			l.Unpacked += h.Size
		}
		l.Entries = append(l.Entries, e)
	}
}

// files maps each non-directory path in the image to its entry, upper
// layers winning. (The test images have no whiteouts.)
func (img *ociImage) files() map[string]ociEntry {
	m := map[string]ociEntry{}
	for _, l := range img.Layers {
		for _, e := range l.Entries {
			if e.Type != tar.TypeDir {
				m[e.Name] = e
			}
		}
	}
	return m
}

// size is the image's compressed size: the sum of its layers.
func (img *ociImage) size() (compressed, unpacked int64) {
	for _, l := range img.Layers {
		compressed += l.Size
		unpacked += l.Unpacked
	}
	return compressed, unpacked
}

func blobPath(dir, digest string) string {
	algo, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(dir, "blobs", algo, hex)
}

func readJSON(file string, v any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", file, err)
	}
	return nil
}
